"""Analysis and statistics: reward validity, paired differences with bootstrap intervals, calibration, tables."""
