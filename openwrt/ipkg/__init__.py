"""Build OpenWrt .ipk packages without the SDK, reading the feed's Makefiles."""
