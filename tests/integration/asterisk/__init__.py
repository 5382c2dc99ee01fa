"""The Asterisk integration tier: a throwaway real Asterisk, SIPp peers, the engine's code."""
