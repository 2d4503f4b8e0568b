"""A tiny authoritative DNS server for the dns kind's tests (UDP and TCP on one loopback port)."""
