"""Local stand-ins for Azure's topology, built from real parts, and the drills that use them.

HAProxy (Debian) as the front door and slot switch, ``manage.py serve`` processes as an app's
slots or instances, a throwaway PostgreSQL database, a bounded load that records every write's
acknowledgement. Nothing here is imported by the app; every process started here is stopped
here, and every port is a free loopback one.
"""
