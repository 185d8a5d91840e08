"""The QoS profiles of every fmb_ros topic, chosen on purpose and in one place.

- STATE: robot state and judgements, RELIABLE, keep last 10 (a few lost samples would be
  tolerable, but loopback and robot networks deliver these reliably at 10 Hz).
- COMMAND: commands to the arm, RELIABLE, keep last 1: only the newest target matters.
- SENSOR: images and point clouds, `qos_profile_sensor_data` (BEST_EFFORT, keep last 5): a late
  frame is worth less than the next one. Subscribers in RViz must choose Best Effort too.
- LATCHED: facts that change rarely (episode facts, skill results), RELIABLE + TRANSIENT_LOCAL,
  keep last 1, so a late subscriber still gets the last one.
- CLOCK: `/clock`, RELIABLE keep last 10 (compatible with rclpy's BEST_EFFORT clock subscriber).
"""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
SENSOR = qos_profile_sensor_data
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
CLOCK = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
