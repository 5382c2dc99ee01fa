"""dialer/asterisk"""
