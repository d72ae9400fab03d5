"""Mutation for checking the learning tests: INPAINTSEG_MUTATE_STEP=noop|ascent changes every torch optimizer's step."""
import os

_mode = os.environ.get("INPAINTSEG_MUTATE_STEP")
if _mode:
    import torch.optim as _optim

    def _wrap(cls):
        orig = cls.step

        def step(self, *args, **kwargs):
            if _mode == "noop":
                return None
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.neg_()
            return orig(self, *args, **kwargs)

        cls.step = step

    for _name in dir(_optim):
        _obj = getattr(_optim, _name)
        if isinstance(_obj, type) and issubclass(_obj, _optim.Optimizer) and _obj is not _optim.Optimizer:
            _wrap(_obj)
