"""Every figure the scripts save. Plotting draws arrays it is given; it never computes a method."""
