"""Flows sent on to other systems (IPFIX collectors); imported only when configured."""
