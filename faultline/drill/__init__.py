"""The drill: one scenario from stack start to verdict (being assembled; see docs/contracts.md)."""
