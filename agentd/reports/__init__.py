"""Reports: per-policy/teacher metrics from trajectory shards, charts, dataset stats."""
