"""One module per instrumented SDK; each is imported only once its SDK has been imported."""
