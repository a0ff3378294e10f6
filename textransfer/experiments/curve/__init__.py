"""Learning curves (``textransfer curve``, kind ``curve``): config, run, report and plot."""
