CREATE TABLE IF NOT EXISTS training_courses (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  pass_mark BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS training_lessons (
  id TEXT PRIMARY KEY,
  course_id TEXT NOT NULL,
  position BIGINT NOT NULL,
  title TEXT NOT NULL,
  content TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS training_lessons_course_idx ON training_lessons (course_id, position);
CREATE TABLE IF NOT EXISTS training_assessments (
  id TEXT PRIMARY KEY,
  course_id TEXT NOT NULL,
  title TEXT NOT NULL,
  questions TEXT NOT NULL,
  max_attempts BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS training_assessments_course_idx ON training_assessments (course_id, created_at);
CREATE TABLE IF NOT EXISTS training_enrolments (
  user_id TEXT NOT NULL,
  course_id TEXT NOT NULL,
  enrolled_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, course_id)
);
CREATE TABLE IF NOT EXISTS training_progress (
  user_id TEXT NOT NULL,
  course_id TEXT NOT NULL,
  lesson_id TEXT NOT NULL,
  completed_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, lesson_id)
);
CREATE INDEX IF NOT EXISTS training_progress_course_idx ON training_progress (user_id, course_id);
CREATE TABLE IF NOT EXISTS training_attempts (
  id TEXT PRIMARY KEY,
  assessment_id TEXT NOT NULL,
  course_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  attempt BIGINT NOT NULL,
  score BIGINT NOT NULL,
  passed BIGINT NOT NULL,
  answers TEXT NOT NULL,
  submitted_at BIGINT NOT NULL,
  UNIQUE (assessment_id, user_id, attempt)
);
CREATE TABLE IF NOT EXISTS training_certificates (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  course_id TEXT NOT NULL,
  course_title TEXT NOT NULL,
  score BIGINT NOT NULL,
  issued_at BIGINT NOT NULL,
  UNIQUE (user_id, course_id)
);
