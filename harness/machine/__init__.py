"""Stage 4, machine: running a plan. QEMU, the console engine, the boot state machine
(System), the step log, SSH into dom0, and `harness boot`'s attached terminal."""
