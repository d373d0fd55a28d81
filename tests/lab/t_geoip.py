#!/usr/bin/python3
"""--geoip FILE.mmdb: smtp.mx_geo for the MX address mailprobe talked to (issue 4, MX
enrichment), with the tiny MaxMind-format databases of tests/data/geo (make_mmdb.py;
docs/internals/geo.md lists their entries). Looking an address up is local: the SMTP
conversation is the same with or without a database; a database that cannot be opened
is a usage error (exit 2, one line on stderr) before any DNS query or connection.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labkit  # noqa: E402

GEO = os.path.normpath(os.path.join(labkit.HERE, "..", "data", "geo"))
LAB = os.path.join(GEO, "lab.mmdb")
CITY = os.path.join(GEO, "lab-city.mmdb")
ASN = os.path.join(GEO, "lab-asn.mmdb")

TLS = ["EHLO probe.lab.test", "STARTTLS", "EHLO probe.lab.test",
       "MAIL FROM:<verify@lab.test>"]


def geoip(*files):
    out = []
    for f in files:
        out += ["--geoip", f]
    return out


def geo(country_code=None, country=None, city=None, asn=None, as_org=None, isp=None):
    return {"country_code": country_code, "country": country, "city": city, "asn": asn,
            "as_org": as_org, "isp": isp}


class GeoIP(labkit.LabCase):
    def test_lab_database_fills_mx_geo(self):
        r = self.check("alice@postfix.test", *geoip(LAB))
        self.assertVerdict(r, "deliverable", "accepted")
        self.assertEqual(r["smtp"]["mx_ip"], labkit.PF["mbox"])
        self.assertEqual(r["smtp"]["mx_geo"],
                         geo("ZZ", "Lab Country", "Lab City", 64512, "Lab Networks"))
        # a local lookup: the conversation is what it is without a database
        self.assertCommands(r, TLS + ["RCPT TO:<alice@postfix.test>"])

    def test_without_database_mx_geo_is_null(self):
        r = self.check("alice@postfix.test")
        self.assertIn("mx_geo", r["smtp"])
        self.assertIsNone(r["smtp"]["mx_geo"])

    def test_isp_and_registered_country(self):
        # 127.0.3.0/24: no city, ISP instead of AS organisation (as_org falls back to it)
        r = self.check("alice@normal.script.test", *geoip(LAB))
        self.assertEqual(r["smtp"]["mx_ip"], labkit.SCRIPT["normal"])
        self.assertEqual(r["smtp"]["mx_geo"], geo("XA", "Second Lab Country", None, 64513,
                                                  "Lab ISP", "Lab ISP"))
        # 127.0.4.0/24 (the delay proxy): only a registered country
        r = self.check("alice@delay.test", *geoip(LAB))
        self.assertEqual(r["smtp"]["mx_ip"], labkit.DELAY_PROXY)
        self.assertEqual(r["smtp"]["mx_geo"], geo("XB", "Registered Lab Country"))

    def test_city_and_asn_databases_merge(self):
        run = labkit.run_mailprobe(["alice@postfix.test", "alice@exim.test",
                                    "alice@normal.script.test"], geoip(CITY, ASN))
        self.assertEqual(run.rc, 0, repr(run))
        got = {r["email"]: (r["smtp"]["mx_ip"], r["smtp"]["mx_geo"]) for r in run.results}
        self.assertEqual(got, {
            # country and city from the city file, ASN and organisation from the ASN file
            "alice@postfix.test": (labkit.PF["mbox"], geo(
                "ZZ", "Lab Country", "Lab City (city db)", 64512, "Lab Networks")),
            "alice@exim.test": (labkit.EXIM, geo(
                "XD", "Third Lab Country", None, 64515, "Third Lab AS")),
            # in neither file: no geo at all, not an object of nulls
            "alice@normal.script.test": (labkit.SCRIPT["normal"], None),
        })

    def test_first_database_wins_per_field(self):
        r = self.check("alice@postfix.test", *geoip(LAB, CITY))
        self.assertEqual(r["smtp"]["mx_geo"]["city"], "Lab City")
        r = self.check("alice@postfix.test", *geoip(CITY, LAB))
        self.assertEqual(r["smtp"]["mx_geo"],
                         geo("ZZ", "Lab Country", "Lab City (city db)", 64512, "Lab Networks"))


class GeoIPErrors(labkit.LabCase):
    """A database that cannot be used: exit code 2, one line on stderr naming the file, no
    results, and nothing asked of DNS (the address is never checked)."""

    def assertUsageError(self, bad, message):
        # a name only this process asks for, so that concurrent tests cannot interfere
        domain = "geo-error-%d.test" % os.getpid()
        mark = labkit.unbound_mark()
        run = labkit.run_mailprobe(["alice@" + domain], geoip(LAB, bad))
        self.assertEqual(run.rc, 2, repr(run))
        self.assertEqual(run.results, [], repr(run))
        self.assertEqual(run.stdout, "")
        lines = run.stderr.splitlines()
        self.assertEqual(lines, ["mailprobe: geoip: " + message], repr(run))
        self.assertNotIn(domain, [q[0] for q in labkit.unbound_queries(mark)])

    def test_missing_file(self):
        bad = os.path.join(GEO, "no-such-file.mmdb")
        self.assertUsageError(bad, "cannot open %s: No such file or directory" % bad)

    def test_garbage_file(self):
        bad = os.path.join(GEO, "garbage.mmdb")
        self.assertUsageError(bad, "%s is not a MaxMind DB file (invalid metadata)" % bad)

    def test_truncated_file(self):
        bad = os.path.join(GEO, "truncated.mmdb")
        self.assertUsageError(bad, "%s is not a MaxMind DB file (invalid metadata)" % bad)

    def test_empty_file(self):
        with tempfile.NamedTemporaryFile(suffix=".mmdb") as f:
            self.assertUsageError(f.name, "%s is empty, not a MaxMind DB file" % f.name)

    def test_directory(self):
        self.assertUsageError(GEO, "cannot open %s: Is a directory" % GEO)


class NoData(labkit.LabCase):
    def test_zz_no_data_anywhere(self):
        labkit.assert_no_data_anywhere()


if __name__ == "__main__":
    labkit.main()
