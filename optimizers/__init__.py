"""The pymoo problem over the production line (decision vector -> F = (C, E, D),
G = (Tmin - T, R - Rmax)), NSGA-II and the other algorithms, the weighted-sum
baseline and the optimiser benchmark (issue 6 fills this package)."""
