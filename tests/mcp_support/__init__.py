"""MCP servers for tests/test_kind_mcp.py: one real HTTP server on the SDK, and tiny broken stdio servers."""
