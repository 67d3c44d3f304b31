"""The nginx gateway's Python side: API key files (`ftk gateway keys`), its configuration (`ftk run gateway`)."""
