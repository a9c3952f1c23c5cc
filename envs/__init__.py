"""Everything that simulates (issues 3, 4 and 7 fill this package).

It will own ``FmuUnit`` (one FMU instance of any FMI 2.0/3.0 FMU), ``CoSimulation``
(several coupled units on an integer tick clock), ``ProductionLine`` (the hybrid
FMU + discrete-event line), the one KPI module, the Gymnasium envs registered under
``twinfactory/``, state synchronisation and the plant emulator.
"""
