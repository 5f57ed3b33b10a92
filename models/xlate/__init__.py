"""The translation layer of "supporting heterogeneous virtualization": RISC-V (RV64IMAC + Zicsr)
Linux programs run on an x86-64 host, inside the modelled VM of :mod:`models.vmm`.

Three tiers give the same architectural results: ``interp`` (:mod:`.interp`, the reference),
``block`` (:mod:`.block`, basic blocks as Python source) and ``native`` (:mod:`.native`, basic
blocks as x86-64 machine code). :class:`~.machine.Machine` loads and runs a program on one.
"""
