"""Fault-injection tests: real worker processes on one SQLite file, SIGKILLed at awkward points."""
