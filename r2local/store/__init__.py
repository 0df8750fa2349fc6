"""The store: the SQLite ledger, its typed records and numbered migrations, and the reads learning needs."""
