"""VideoMAE study suite: data, models, training and reporting for the data-efficiency study."""

__version__ = "0.1.0"
