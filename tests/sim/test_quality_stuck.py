"""The stuck-meter rule of meter-data screening at its threshold, through `screen_meter_data`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.quality import ScreeningConfig, screen_meter_data


def test_stuck_meter_threshold_is_inclusive():
    """``stuck_steps`` = 12: exactly 12 equal non-zero readings in a row are stuck (12 steps
    removed); 11 are not (0 removed); 12 zeros are an empty house, not a stuck meter.

    Three meters, 48 hourly readings ``0.3 + 0.01·(i mod 7)`` (no two neighbours equal), with
    readings 10–21 (12 of them), 10–20 (11) or 10–21 set to 0.5, 0.5, 0.0 respectively.
    """
    stamps = pd.date_range("2016-01-04", periods=48, freq="h").astype(str)
    frames = []
    for cid, run, value in ((1, 12, 0.5), (2, 11, 0.5), (3, 12, 0.0)):
        kwh = 0.3 + 0.01 * (np.arange(48) % 7)
        kwh[10:10 + run] = value
        frames.append(pd.DataFrame({"customer_id": str(cid), "timestamp": stamps,
                                    "kwh": [f"{v:.4f}" for v in kwh]}))
    _, report = screen_meter_data(pd.concat(frames, ignore_index=True),
                                  ScreeningConfig(stuck_steps=12))
    assert report["stuck_steps"].tolist() == [12, 0, 0]
