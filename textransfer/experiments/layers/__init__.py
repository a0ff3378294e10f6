"""Layer transfer (``textransfer layers``, kind ``layers``): config, run, report and plot."""
