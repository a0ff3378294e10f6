"""The cross-domain grid (``textransfer crossdomain``, kind ``crossdomain``): config, run, the
matrix of rows, report and plots."""
