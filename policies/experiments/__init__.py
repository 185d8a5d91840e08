"""Measuring policies: `fmb eval` (`evaluate`), its reports (`report`), the selection / GravMap
ablation (`ablation`), the speed bench (`bench`, `timing`) and the goal-response diagnostic
(`diagnostics`)."""
