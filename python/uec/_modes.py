"""The core's integer codes for the estimator's string options (clipping, learning-rate
schedule, centre update), shared by the estimator and by transform's epochs."""

CLIP = {"umap": 0, "scaled": 1, "norm": 2}
SCHEDULE = {"linear": 0, "step": 1}
CENTRE_UPDATE = {"gradient": 0, "mean": 1, "fixed_point": 2}
