#!/usr/bin/env python3
"""Core-SVP estimate of the ring-LWR parameter sets of veilgrid-aggregation.

Models LWR(n, q, p) as LWE(n, q, sigma) with the rounding noise uniform on an interval of
width q/p (sigma = (q/p)/sqrt(12)), as the Saber submission does, and gives the attacker a
secret as short as the noise (normal form) and up to 2n samples: both are conservative.

Primal uSVP: the 2016 estimate (Alkim-Ducas-Poeppelmann-Schwabe, NewHope): BKZ-beta succeeds
when sigma*sqrt(beta) <= delta^(2*beta-d-1) * q^(m/d), d = m + n + 1.
Dual: distinguishing advantage eps = 4 exp(-2 pi^2 tau^2), tau = l*sigma/q with l = delta^d q^(n/d);
the attack succeeds when 2*log2(1/eps) <= 0.2075*beta (vectors reused from one sieve).
Cost: core-SVP 2^(0.292 beta) classical, 2^(0.265 beta) quantum.

The reference lines reproduce the published core-SVP numbers of Kyber-512 (118), Kyber-768 (182)
and Saber (203), which checks the script. Run: python3 estimate_lwr.py
"""
import math


def delta(b):
    return ((math.pi * b) ** (1.0 / b) * b / (2 * math.pi * math.e)) ** (1.0 / (2 * (b - 1)))


def primal(n, logq, sigma):
    lq = logq * math.log(2)
    for b in range(50, 2000):
        ld = math.log(delta(b))
        for m in range(max(50, n // 4), 2 * n + 1, 8):
            d = m + n + 1
            if math.log(sigma) + 0.5 * math.log(b) <= (2 * b - d - 1) * ld + (m / d) * lq:
                return b
    return None


def dual(n, logq, sigma):
    q = 2.0 ** logq
    for b in range(50, 2000):
        ld = math.log(delta(b))
        for m in range(max(50, n // 4), 2 * n + 1, 8):
            d = m + n
            l = math.exp(d * ld + (n / d) * math.log(q))
            eps = 4 * math.exp(-2 * math.pi ** 2 * (l * sigma / q) ** 2)
            if eps > 0 and 2 * math.log2(1 / eps) <= 0.2075 * b:
                return b
    return None


def report(name, n, logq, sigma):
    bp, bd = primal(n, logq, sigma), dual(n, logq, sigma)
    b = min(bp, bd)
    print(f"{name:28s} n={n:5d} log2q={logq:6.1f} sigma={sigma:9.2f} "
          f"primal beta={bp} dual beta={bd} core-SVP classical={0.292*b:.0f} quantum={0.265*b:.0f}")


if __name__ == "__main__":
    PN = 65537
    sigma = PN / math.sqrt(12)
    report("R2048P32 (p=2^32-139263)", 2048, math.log2((2**32 - 139263) * PN), sigma)
    report("R2048P40 (p=2^40-147455)", 2048, math.log2((2**40 - 147455) * PN), sigma)
    report("R2048P50 (p=2^50-16383)", 2048, math.log2((2**50 - 16383) * PN), sigma)
    report("R4096P61 (p=2^61-139263)", 4096, math.log2((2**61 - 139263) * PN), sigma)
    report("ref Kyber-512", 512, math.log2(3329), math.sqrt(1.5))
    report("ref Kyber-768", 768, math.log2(3329), 1.0)
    report("ref Saber (l=3, q/p=8)", 768, 13, math.sqrt(21) / 2)
