"""The single run (``textransfer run``, kind ``train``): config, run, report."""
