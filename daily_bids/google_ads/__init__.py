"""The Google Ads API as a source of keyword reports, through Google's own `google-ads` client library.

The library is imported lazily, inside the functions that call the API, so that loading the platform's definitions
never needs it.
"""
