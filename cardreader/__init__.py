"""cardreader"""
