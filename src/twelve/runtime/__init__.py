"""The part of twelve that ships inside every release. Standard library only; never imports
the builder. Keep imports here lazy: boot time matters."""
