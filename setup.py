"""FMB manipulation stack: one pip package, one ROS 2 (ament_python) package.

The import packages are the layers (`fmb_core` <- `cad` <- `sim` <- `policies` <- `fmb_ros`) and
`fmb`, the command line and pipelines on top. Heavy dependencies are grouped into extras so that each
layer installs and tests on its own:

    pip install -e .[cad]     # procedural printable objects
    pip install -e .[sim]     # + MuJoCo and PyBullet
    pip install -e .[learn]   # + torch (CPU wheel here, CUDA wheel on a GPU machine)
    pip install -e .[ros]     # + ROS 2 Jazzy rclpy wheels (robots use their ROS install instead)
    pip install -e .[perception]  # + open3d (CPU wheel) for the perception node
    pip install -e .[ik]      # + mink, inverse kinematics for the joint-trajectory output
    pip install -e .[step]    # + build123d for STEP export
    pip install -e .[scale]   # + Ray: rollouts on a local Ray instance or a cluster (--ray-address)
    pip install -e .[dev]     # everything the test suite exercises
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = "fmb_ros"

CAD = [
    "numpy>=1.24",
    "shapely>=2.1",
    "trimesh>=4.0",
    "manifold3d>=3.0",
    "networkx>=3.0",  # trimesh 3MF export
    "lxml>=4.9",  # trimesh 3MF export
    "matplotlib>=3.7",  # contact-sheet preview
    "tqdm>=4.60",
]
SIM = CAD + ["mujoco>=3.2", "pybullet>=3.2", "gymnasium>=1.0", "scipy>=1.10", "pyarrow>=14", "av>=12"]
SIM += ["rosbags>=0.10,<0.12"]  # rosbag2 read/write (MCAP, sqlite3) without ROS: `fmb data import-bag`
LEARN = SIM + ["torch==2.13.0", "diffusers>=0.30", "safetensors>=0.4"]
ROS = [
    "ros-jazzy-rclpy[fastrtps]",
    "ros-jazzy-std-msgs",
    "ros-jazzy-std-srvs",
    "ros-jazzy-geometry-msgs",
    "ros-jazzy-sensor-msgs",
    "ros-jazzy-trajectory-msgs",
    "ros-jazzy-visualization-msgs",
    "ros-jazzy-diagnostic-msgs",
    "ros-jazzy-rosgraph-msgs",  # /clock
]
STEP = ["build123d>=0.9"]
# Debian/Ubuntu: open3d also needs the system library libusb-1.0 (scripts/setup_venv.sh installs it).
PERCEPTION = ["open3d-cpu>=0.18"]
IK = ["mink>=0.0.5", "daqp>=0.5"]  # mink's differential IK; daqp is the QP solver it is run with
SCALE = ["ray>=2.40,<3"]  # rollouts as Ray actors (sim.parallel); plain ray, no dashboard extras
COLCON = ["colcon-core", "colcon-ros", "colcon-python-setup-py"]  # tests build the ROS package as a robot would
DEV = LEARN + STEP + ROS + PERCEPTION + IK + SCALE + COLCON + ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6"]

setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    description="Functional Manipulation Benchmark stack: CAD, simulation, policies, ROS 2 nodes",
    python_requires=">=3.10,<3.13",
    packages=find_packages(
        include=["fmb_core", "fmb", "cad", "sim", "sim.*", "policies", "policies.*", PACKAGE_NAME + "*"]
    ),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
        ("share/" + PACKAGE_NAME, ["package.xml"]),
        ("share/" + PACKAGE_NAME + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE_NAME + "/launch/params", glob("launch/params/*.yaml")),
        ("share/" + PACKAGE_NAME + "/launch/tasks", glob("launch/tasks/*.yaml")),
    ],
    install_requires=["numpy>=1.24", "pyyaml>=6.0"],
    extras_require={
        "cad": CAD,
        "sim": SIM,
        "learn": LEARN,
        "ros": ROS,
        "step": STEP,
        "perception": PERCEPTION,
        "ik": IK,
        "scale": SCALE,
        "all": sorted(set(LEARN + ROS + STEP + PERCEPTION + IK + SCALE)),
        "dev": DEV,
    },
    zip_safe=True,
    maintainer="FMB stack maintainers",
    maintainer_email="fmb-stack@example.org",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "fmb = fmb.cli:main",
            "fmb_sim_robot = fmb_ros.sim_robot:main",
            "fmb_skill_server = fmb_ros.skill_server:main",
            "fmb_task_executor = fmb_ros.task_executor:main",
            "fmb_perception = fmb_ros.perception_node:main",
            "fmb_cloud_fusion = fmb_ros.cloud_fusion_node:main",
            "fmb_recorder = fmb_ros.recorder_node:main",
            "fmb_teleop = fmb_ros.teleop_node:main",
        ],
    },
)
