"""A seeded local instance for trying Tearline: keys, schema, partners, sample intelligence, tokens.

``tearline demo`` calls these functions in order; tests call them directly. What the demo
then hands out (tokens, the settings file, the printed text) is :mod:`app.demo.handout`.
Everything is idempotent: the sample objects have fixed ids and timestamps, so
seeding again submits exact duplicates, which the store accepts without
adding rows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stix2
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.audit.transaction import audit_operator_writes
from app.auth.keys import generate_key_pair
from app.auth.principal import Principal
from app.config.settings import Settings
from app.db import migrations
from app.db.engine import make_engine
from app.demo.review import seed_review
from app.disclosure.setup import bind_disclosure
from app.items.identity import home_identity, home_identity_id
from app.items.models import StixObject
from app.markings.classification import TOP_RANK
from app.markings.mappings import load_mappings
from app.partners.service import save_partner
from app.policy.visibility import VisibilityCache
from app.recall.setup import bind_recall
from app.taxii import service as taxii_service
from app.taxii.models import DEFAULT_COLLECTION_ID

DEMO_DIR = Path("data/demo")
# Ids of the sample objects are UUIDv5 under this namespace, so every run (and every
# machine) produces the same objects for the same home nation.
DEMO_NAMESPACE = uuid.UUID("6f1d3c52-9a0e-4b8e-8f43-2d1c7a5e9b10")
DEMO_TOKEN_LIFETIME_S = 12 * 3600
ANALYST_SUBJECT = "demo-analyst"

# (nation, name, clearance, groups)
DEMO_PARTNERS = [
    ("USA", "United States", "SECRET", ("FVEY", "NATO")),
    ("GBR", "United Kingdom", "SECRET", ("FVEY", "NATO")),
    ("FRA", "France", "CONFIDENTIAL", ("NATO", "EU")),
    ("DEU", "Germany", "CONFIDENTIAL", ("NATO", "EU")),
    ("CAN", "Canada", "SECRET", ("FVEY", "NATO")),
]


@dataclass(frozen=True)
class SeedResult:
    """What seeding did: partners registered, objects submitted and accepted, objects now stored."""

    partners: list[str]
    submitted: int
    succeeded: int
    failures: list[str]
    stored: int


def demo_settings(base_dir: Path = DEMO_DIR, *, port: int = 8000, host: str = "127.0.0.1") -> Settings:
    """Settings for the demo instance in ``base_dir``: SQLite there, its own key pair, a cursor secret for this run.

    The home nation and the other settings still come from the environment; only
    what would make the demo depend on the operator's real configuration is fixed.
    """
    base_dir = base_dir.resolve()
    keys = base_dir / "keys"
    return Settings(
        env="development",
        data_dir=base_dir,
        database_url=f"sqlite:///{base_dir / 'tearline.sqlite'}",
        jwt_private_key_file=keys / "jwt-private.pem",
        jwt_public_key_file=keys / "jwt-public.pem",
        secret_key=secrets.token_urlsafe(32),
        host=host,
        port=port,
    )


def ensure_keys(settings: Settings, kind: str = "rsa") -> bool:
    """Generate the development key pair unless both halves exist; True when new keys were written."""
    private_path, public_path = settings.default_key_paths()
    if private_path.exists() and public_path.exists():
        return False
    generate_key_pair(private_path, public_path, kind)
    return True


def seed_partners(session: Session, settings: Settings) -> list[str]:
    """Register the demo partners; a demo partner that is the home nation is skipped. Returns their codes."""
    registered = []
    mappings = load_mappings(settings.mappings_dir)
    for nation, name, clearance, groups in DEMO_PARTNERS:
        if nation == settings.home_nation:
            continue
        save_partner(
            session,
            nation=nation,
            name=name,
            clearance=mappings.rank_of(clearance),
            groups=groups,
            home_nation=settings.home_nation,
        )
        registered.append(nation)
    return registered


def _id(object_type: str, home_nation: str, key: str) -> str:
    # STIX 2.1 asks for UUIDv4 ids on SDOs and SROs: the v5 digest keeps them stable,
    # the version bits make them well-formed v4.
    digest = uuid.uuid5(DEMO_NAMESPACE, f"{home_nation}/{key}")
    return f"{object_type}--{uuid.UUID(bytes=digest.bytes, version=4)}"


def sample_objects(home_nation: str) -> list[dict[str, Any]]:
    """About twenty STIX 2.1 objects: one fictional intrusion campaign as the home nation reports it.

    Objects carry TLP:GREEN or a classification banner (statement marking), so the
    demo keeps showing differences between partners once releasability is enforced.
    Addresses are from the documentation ranges and domains end in ``.example``.
    """
    day = "2026-11-02T08:00:00.000Z"
    later = "2026-11-03T14:30:00.000Z"
    # The identity the analyst API puts in created_by_ref, so demo items and posted ones share an author.
    identity_id = home_identity_id(home_nation)

    def banner(text: str) -> stix2.v21.MarkingDefinition:
        return stix2.v21.MarkingDefinition(
            id=_id("marking-definition", home_nation, text),
            created=day,
            created_by_ref=identity_id,
            definition_type="statement",
            definition=stix2.v21.StatementMarking(statement=text),
        )

    green = stix2.v21.TLP_GREEN
    confidential = banner(f"CONFIDENTIAL//REL TO {home_nation}, NATO")
    secret = banner(f"SECRET//REL TO {home_nation}, FVEY")
    common = {"created": day, "modified": later, "created_by_ref": identity_id}

    identity = stix2.v21.Identity(**home_identity(home_nation))
    actor = stix2.v21.ThreatActor(
        id=_id("threat-actor", home_nation, "cobalt-lantern"),
        name="COBALT LANTERN",
        **common,
        description="State-sponsored espionage group targeting defence procurement and diplomatic staff.",
        threat_actor_types=["nation-state", "spy"],
        aliases=["TA-LANTERN"],
        roles=["agent"],
        sophistication="expert",
        resource_level="government",
        primary_motivation="organizational-gain",
        goals=["Collect defence procurement documents", "Monitor diplomatic correspondence"],
        first_seen="2025-03-01T00:00:00Z",
        object_marking_refs=[secret.id],
    )
    loader = stix2.v21.Malware(
        id=_id("malware", home_nation, "lanternloader"),
        name="LANTERNLOADER",
        is_family=True,
        **common,
        description="Macro-enabled document dropper that fetches a second stage over HTTPS.",
        malware_types=["downloader", "dropper"],
        capabilities=["communicates-with-c2", "evades-av"],
        object_marking_refs=[confidential.id],
    )
    rat = stix2.v21.Malware(
        id=_id("malware", home_nation, "glowrat"),
        name="GLOWRAT",
        is_family=True,
        **common,
        description="Remote access trojan used for collection and exfiltration after LANTERNLOADER.",
        malware_types=["remote-access-trojan"],
        capabilities=["communicates-with-c2", "captures-input-peripherals", "exfiltrates-data"],
        object_marking_refs=[confidential.id],
    )
    phishing = stix2.v21.AttackPattern(
        id=_id("attack-pattern", home_nation, "t1566.001"),
        name="Spearphishing Attachment",
        **common,
        description="Emails with a malicious macro-enabled document impersonating a supplier invoice.",
        external_references=[{"source_name": "mitre-attack", "external_id": "T1566.001"}],
        object_marking_refs=[green.id],
    )
    dropper_sha256 = hashlib.sha256(b"tearline demo: LANTERNLOADER invoice.docm").hexdigest()
    indicators = [
        (
            rat,
            "GLOWRAT command-and-control server",
            "Beacons every 300 s over HTTPS with a fixed user agent.",
            "[ipv4-addr:value = '203.0.113.45']",
            confidential,
        ),
        (
            loader,
            "LANTERNLOADER second-stage host",
            "Serves the GLOWRAT installer to infected hosts.",
            "[domain-name:value = 'cdn-update.lantern-mirror.example']",
            green,
        ),
        (
            loader,
            "LANTERNLOADER malicious attachment",
            "invoice.docm sent to procurement staff.",
            f"[file:hashes.'SHA-256' = '{dropper_sha256}']",
            green,
        ),
        (
            loader,
            "LANTERNLOADER payload download URL",
            "Fetched by the document macro.",
            "[url:value = 'https://198.51.100.23/assets/invoice.docm']",
            confidential,
        ),
    ]
    indicator_objects, relationships = [], []
    for number, (target, name, description, pattern, marking) in enumerate(indicators, start=1):
        indicator = stix2.v21.Indicator(
            id=_id("indicator", home_nation, f"indicator-{number}"),
            name=name,
            description=description,
            pattern=pattern,
            pattern_type="stix",
            valid_from=day,
            indicator_types=["malicious-activity"],
            **common,
            object_marking_refs=[marking.id],
        )
        indicator_objects.append(indicator)
        relationships.append((indicator, "indicates", target, marking))
    relationships += [(actor, "uses", loader, secret), (actor, "uses", rat, secret), (actor, "uses", phishing, secret)]
    relationship_objects = [
        stix2.v21.Relationship(
            id=_id("relationship", home_nation, f"{source.id} {kind} {target.id}"),
            relationship_type=kind,
            source_ref=source.id,
            target_ref=target.id,
            **common,
            object_marking_refs=[marking.id],
        )
        for source, kind, target, marking in relationships
    ]
    content = [identity, actor, loader, rat, phishing, *indicator_objects, *relationship_objects]
    report = stix2.v21.Report(
        id=_id("report", home_nation, "report"),
        name="COBALT LANTERN spearphishing against defence procurement",
        description="Campaign summary: spearphishing attachments deliver LANTERNLOADER, which installs GLOWRAT.",
        report_types=["threat-actor", "malware"],
        published=later,
        **common,
        object_refs=[obj.id for obj in content],
        object_marking_refs=[secret.id],
    )
    # TLP:CLEAR (1.0 white) marks the home identity.
    everything = [stix2.v21.TLP_WHITE, green, confidential, secret, *content, report]
    return [json.loads(obj.serialize()) for obj in everything]


def analyst_principal(settings: Settings) -> Principal:
    """The home-nation analyst the demo posts as."""
    return Principal(ANALYST_SUBJECT, settings.home_nation, frozenset({"analyst"}), TOP_RANK, frozenset(), is_home=True)


def stored_count(session: Session, collection_id: str = DEFAULT_COLLECTION_ID) -> int:
    """Object versions stored in a collection."""
    query = select(func.count()).select_from(StixObject).where(col(StixObject.collection_id) == collection_id)
    return int(session.execute(query).scalar_one())


def seed_objects(session: Session, settings: Settings) -> tuple[int, int, list[str]]:
    """Post the sample objects to the default collection as the demo analyst: (submitted, succeeded, failures)."""
    objects = sample_objects(settings.home_nation)
    status = taxii_service.add_objects(
        session,
        DEFAULT_COLLECTION_ID,
        analyst_principal(settings),
        objects,
        mappings=load_mappings(settings.mappings_dir),
        home_nation=settings.home_nation,
    )
    details = json.loads(status.details)
    failures = [f"{f['id']}: {f.get('message', 'failed')}" for f in details["failures"]]
    return status.total_count, status.success_count, failures


def seed(settings: Settings, operator: str = "demo") -> SeedResult:
    """Make the demo instance ready: key pair, migrated schema, partners, sample objects."""
    ensure_keys(settings)
    migrations.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    mappings = load_mappings(settings.mappings_dir)
    bind_recall(engine, settings, mappings, VisibilityCache(settings.policies_dir, mappings, settings.home_nation))
    bind_disclosure(engine, settings, mappings)
    try:
        with Session(engine) as session:
            # Seeding changes who may see what like any operator's command: it is audited the same way.
            audit_operator_writes(session, settings, operator=operator, command="tearline demo (seeding)")
            partners = seed_partners(session, settings)
            submitted, succeeded, failures = seed_objects(session, settings)
            failures += seed_review(session, analyst_principal(settings), mappings, settings.home_nation)
            stored = stored_count(session)
    finally:
        engine.dispose()
    return SeedResult(partners, submitted, succeeded, failures, stored)
