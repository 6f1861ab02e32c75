"""`make bench`: what bandix costs on the packet path, measured in one run.

Two figures, each as a ratio so machine speed cancels out: the kernel's own
per-run cost of bandix's TC programs against an empty TC program on the same
hooks (bpfcost), and the small-packet rate through the virtual router with and
without bandix (rate).
"""
