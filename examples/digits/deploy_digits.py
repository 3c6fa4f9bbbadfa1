"""Train a digit classifier on scikit-learn's digits and serve it as the Clipper app `digits`.

The tutorial (docs/tutorial.md) walks through the same steps one at a time. Run against a
started server (`clipper start --detach`):

    python examples/digits/deploy_digits.py                   # app "digits", model version 1
    python examples/digits/deploy_digits.py --version 2 --kind svm
"""

from __future__ import annotations

import argparse
from typing import Any

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import sklearn as sklearn_deployer

KINDS = {
    "logistic": lambda: LogisticRegression(max_iter=2000),
    "svm": lambda: SVC(gamma=0.001),
    "forest": lambda: RandomForestClassifier(n_estimators=50, random_state=0),
}


def train(kind: str = "logistic") -> tuple[Any, float]:
    """A fitted classifier of 8x8 digit images (64 values 0-16) and its test accuracy."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, random_state=0)
    model = KINDS[kind]().fit(x_train, y_train)
    return model, float(model.score(x_test, y_test))


def deploy(
    conn: ClipperConnection, model: Any, version: int = 1, name: str = "digits", app: str = "digits"
) -> None:
    """Register `app` if new, deploy `model` as `name` at `version`, and link it to `app`."""
    if conn.get_app_info(app) is None:
        conn.register_application(app, "doubles", default_output="-1", slo_micros=100_000)
    sklearn_deployer.deploy_sklearn_model(conn, name, version, "doubles", model)
    if name not in conn.get_linked_models(app):
        conn.link_model_to_app(app, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(KINDS), default="logistic")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--name", default="digits", help="model name (default digits)")
    parser.add_argument("--query-port", type=int, default=1337)
    parser.add_argument("--admin-port", type=int, default=1338)
    args = parser.parse_args()
    model, accuracy = train(args.kind)
    print(f"{args.kind}: test accuracy {accuracy:.3f}")
    manager = LocalContainerManager(
        clipper_query_port=args.query_port, clipper_management_port=args.admin_port
    )
    conn = ClipperConnection(manager)
    conn.connect()
    deploy(conn, model, args.version, args.name)
    print(f"deployed {args.name}:{args.version} behind the app 'digits'")


if __name__ == "__main__":
    main()
