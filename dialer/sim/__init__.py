"""dialer/sim"""
