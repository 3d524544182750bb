"""centinela: the alarm panel firmware core and its process."""
