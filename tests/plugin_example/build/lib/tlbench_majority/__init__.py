"""Example plugin: a majority-class baseline and an XOR toy dataset."""
