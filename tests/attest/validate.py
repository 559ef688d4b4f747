"""Validates one build output directory's attestations with the tools the issue names.

    python validate.py OUTPUT_DIR SCHEMA

sbom.spdx.json with spdx-tools (pyspdxtools' parser and validator), sbom.cdx.json with
cyclonedx-python-lib's strict JSON validator (CycloneDX 1.6 schema), provenance.intoto.json
with in-toto-attestation (Statement and ResourceDescriptor checks, the SLSA v1 predicate parsed
strictly into its protobuf) and the SLSA v1 JSON schema kept beside this file. Prints one line
per problem and exits 1 if there is any.
"""

import json
import sys

out, schema_path = sys.argv[1], sys.argv[2]
problems = []

from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

doc = parse_file(f"{out}/sbom.spdx.json")
for m in validate_full_spdx_document(doc):
    problems.append(f"spdx: {m.validation_message} ({m.context})")

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(f"{out}/sbom.cdx.json") as f:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(f.read())
if error is not None:
    problems.append(f"cyclonedx: {error}")

import jsonschema
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

with open(f"{out}/provenance.intoto.json") as f:
    statement = json.load(f)
try:
    pb = json_format.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    predicate = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    deps = list(predicate.build_definition.resolved_dependencies)
    if not deps:
        problems.append("provenance: no resolvedDependencies")
    for d in deps:
        ResourceDescriptor.copy_from_pb(d).validate()
except Exception as e:  # noqa: BLE001 - every failure is a finding
    problems.append(f"provenance (in-toto-attestation): {e}")
with open(schema_path) as f:
    schema = json.load(f)
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
for e in validator.iter_errors(statement):
    problems.append(f"provenance (SLSA v1 schema): {'/'.join(map(str, e.absolute_path))}: {e.message}")

for p in problems:
    print(p)
print(f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
