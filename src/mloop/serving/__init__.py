"""The HTTP service started by ``mloop serve``: feature server routes today; model endpoints next."""
