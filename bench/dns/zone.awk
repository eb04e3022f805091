# bench/dns/zone.awk: writes the benchmark's zone and its queries.
#   awk -v n=HOSTS -v q=QUERIES -v origin=NAME -v zone=FILE -v mix=FILE -f zone.awk
# The zone: origin's SOA and NS, n hosts hI (an A each; an AAAA when I is
# even; an MX when I % 4 == 1; a TXT when I % 4 == 3), and a wildcard
# *.wild with A, AAAA, MX and TXT. The queries, one "name type" a line as
# dnsperf reads them, shuffled with a fixed seed: 70% existing hosts with a
# type they hold, 15% names that do not exist (NXDOMAIN), 15% names under
# the wildcard.
BEGIN {
  srand(1)
  o = origin "."
  print "$ORIGIN " o > zone
  print "$TTL 3600" > zone
  print "@ IN SOA ns1 hostmaster 1 3600 900 604800 3600" > zone
  print "@ IN NS ns1" > zone
  print "ns1 IN A 127.0.0.1" > zone
  print "mail IN A 192.0.2.25" > zone
  for (i = 0; i < n; i++) {
    printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256 > zone
    if (i % 2 == 0) printf "h%d IN AAAA 2001:db8::%x\n", i, i > zone
    if (i % 4 == 1) printf "h%d IN MX 10 mail\n", i > zone
    if (i % 4 == 3) printf "h%d IN TXT \"bench host %d\"\n", i, i > zone
  }
  print "*.wild IN A 192.0.2.80" > zone
  print "*.wild IN AAAA 2001:db8::80" > zone
  print "*.wild IN MX 10 mail" > zone
  print "*.wild IN TXT \"wildcard\"" > zone
  close(zone)

  split("A AAAA MX TXT", any, " ")
  for (k = 0; k < q; k++) {
    r = rand()
    if (r < 0.70) {
      i = int(rand() * n)
      m = 0
      t[++m] = "A"
      if (i % 2 == 0) t[++m] = "AAAA"
      if (i % 4 == 1) t[++m] = "MX"
      if (i % 4 == 3) t[++m] = "TXT"
      printf "h%d.%s %s\n", i, origin, t[1 + int(rand() * m)] > mix
    } else if (r < 0.85) {
      printf "nx%d.%s %s\n", int(rand() * 1000000), origin, any[1 + int(rand() * 4)] > mix
    } else {
      printf "w%d.wild.%s %s\n", int(rand() * 1000000), origin, any[1 + int(rand() * 4)] > mix
    }
  }
  close(mix)
}
