"""Pieces every policy family shares: demonstration windows (`dataset`), observation features
and normalisation (`features`), encoders (`encoders`), the model contract (`model`), checkpoints
(`checkpoint`)."""
