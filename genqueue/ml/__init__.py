"""Models genqueue runs itself (no download at run time): exported once at install, then loaded
from files inside the virtualenv."""
