"""Exports: the trajectory shards turned into data a trainer takes as it is.

* ``export``   — filtered jsonl, parquet (``parquet``) and SRL step data (``srl``), atomically
* ``sft``, ``groups`` — SFT chats and GRPO groups in TRL's conversational format (``columns``,
  ``schemas``, ``rows``, ``tokens`` build them; ``chat`` recovers messages from a prompt;
  ``extras`` reads the newer optional record fields; ``card`` writes the dataset card)
* ``tasks``    — the task facts an export joins in (split, recipes, reference steps)
"""
