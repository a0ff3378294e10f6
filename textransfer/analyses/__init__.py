"""Transfer analyses: learning curves over label budgets and layer transferability.

- :func:`~textransfer.analyses.curve.run_curve` (``textransfer curve CONFIG``): accuracy on a
  target test split against the number of labeled target examples, per setup and seed, with the
  three benefits of transfer against a no-transfer baseline;
- :func:`~textransfer.analyses.layers.run_layers` (``textransfer layers CONFIG``): Yosinski et
  al. (2014): keep the bottom k layer groups of a pretrained or source-trained encoder,
  re-initialise the rest, train on the target with them frozen (AnB) or fine-tuned (AnB+).

Configs are read by :mod:`textransfer.analyses.config`. Nothing here is imported by
``import textransfer``.
"""
