"""hisync"""
