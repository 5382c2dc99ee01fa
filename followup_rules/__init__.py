"""followup_rules"""
