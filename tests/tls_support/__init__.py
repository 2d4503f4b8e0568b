"""Certificates made with ``cryptography`` (a CA, intermediates, leaves with chosen dates, names and
keys) and real TLS, SMTP and PostgreSQL servers on loopback that present them."""
