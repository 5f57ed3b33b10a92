"""Golden model of the NIC system: parser, steering, rules, bounce, and the VMM's software filter.

The hardware (``hdl/nic``) implements the same contract bit-exactly (``docs/nic.md``).

Modules
-------
pcap     classic pcap files: :func:`read_pcap`, :func:`write_pcap`
parse    the header parser: :func:`parse` -> :class:`Parsed`
rules    rules files: :func:`load_rules`, :func:`rules_to_toml`, :func:`random_rules`
filter   the hardware's decision: :func:`judge` -> :class:`Verdict`, :class:`Counters`
vmm      the VMM's stateful software filter: :class:`VmmFilter`, :func:`share`
traffic  seeded random traffic (scapy): :func:`generate_traffic`
bpf      libpcap filters equivalent to a VF's rules (the tcpdump oracle)
run      :func:`run_model`, :func:`run_vmm`, :func:`write_outputs`
"""

from .filter import Counters, Verdict, judge
from .parse import Parsed, parse
from .pcap import Record, read_pcap, write_pcap
from .rules import Rules, load_rules, random_rules, rules_to_toml
from .run import run_model, run_vmm, write_outputs
from .vmm import Decision, VmmFilter, share

__all__ = [
    "Parsed",
    "parse",
    "Record",
    "read_pcap",
    "write_pcap",
    "Rules",
    "load_rules",
    "rules_to_toml",
    "random_rules",
    "Verdict",
    "Counters",
    "judge",
    "Decision",
    "VmmFilter",
    "share",
    "run_model",
    "run_vmm",
    "write_outputs",
]
