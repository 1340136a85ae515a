"""Tests of cagsr.attention."""
