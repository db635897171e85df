"""The processes of the stack, one module each, and the supervisor that runs them all."""
